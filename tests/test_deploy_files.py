"""The container set-up in deploy/ holds together without Docker: the image's COPY lines
carry everything the application needs, compose.yaml names what exists, and the nginx site of
the compose set-up is exactly the production config rendered for it (and nginx accepts it)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
sys.path.insert(0, str(DEPLOY / "compose"))

import render  # noqa: E402  (deploy/compose/render.py)


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def copied_paths() -> list[str]:
    """The sources of the Dockerfile's COPY lines (relative to the repository root)."""
    paths = []
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            paths += line.split()[1:-1]
    return paths


def test_the_image_copies_what_exists():
    paths = copied_paths()
    assert paths, "no COPY lines"
    for path in paths:
        assert (ROOT / path).exists(), f"COPY {path}: no such file"
    # Every Django app and the ASGI module come along.
    for package in ("youthhub", "chat", "dropin", "frontend", "manage.py", "pyproject.toml"):
        assert package in paths


def test_the_copied_tree_runs_on_its_own(tmp_path):
    """Only what the image copies: Django's checks pass and collectstatic finds every file."""
    for path in copied_paths():
        source, target = ROOT / path, tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PYTHONPATH")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="youthhub.settings",
        YOUTHHUB_DATA_DIR=str(tmp_path / "data"),
        YOUTHHUB_STATIC_ROOT=str(tmp_path / "static"),
    )
    probe = "import youthhub, sys; print(youthhub.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert where.stdout.startswith(str(tmp_path)), where.stdout + where.stderr
    for args in (["check"], ["collectstatic", "--noinput"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "static" / "youthhub" / "js" / "youth.js").exists()


def test_compose_names_what_exists():
    spec = compose()
    services = spec["services"]
    assert {"postgres", "redis", "prepare", "worker1", "worker2", "nginx", "errorlog"} <= set(
        services
    )
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in spec["volumes"], f"{name} uses undeclared volume {source}"
    build = services["worker1"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    # The workers nginx proxies to are the workers compose runs.
    workers = sorted(name for name in services if name.startswith("worker"))
    assert list(render.WORKERS) == workers


def test_the_env_example_names_every_secret_production_requires():
    example = (DEPLOY / "compose" / "youthhub.env.example").read_text()
    names = {line.split("=")[0] for line in example.splitlines() if "=" in line}
    assert {"SECRET_KEY", "YOUTHHUB_DATA_KEYS", "ALLOWED_HOSTS"} <= names
    ignored = (ROOT / ".gitignore").read_text()
    assert "deploy/compose/youthhub.env" in ignored, "the filled-in env file must not be committed"


def test_the_compose_site_is_the_production_config_rendered():
    committed = (DEPLOY / "compose" / "site.conf").read_text()
    assert committed.split("\n", 1)[1] == render.rendered(), "run deploy/compose/render.py"


def test_nginx_accepts_the_compose_configuration(tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(nginx), "nginx is missing (Debian package nginx-light)"
    # The same files, with the container names and paths pointed at this machine.
    site = (DEPLOY / "compose" / "site.conf").read_text()
    for worker in render.WORKERS:
        site = site.replace(f"{worker}:8000", "127.0.0.1:8000")
    site = site.replace("/run/youthhub/", f"{tmp_path}/").replace("listen 80;", "listen 18080;")
    (tmp_path / "youthhub.conf").write_text(site)
    main = (DEPLOY / "compose" / "nginx.conf").read_text()
    main = main.replace("user nginx;\n", "").replace("/run/youthhub/", f"{tmp_path}/")
    main = main.replace("/var/run/nginx.pid", f"{tmp_path}/nginx.pid")
    main = main.replace("/etc/nginx/youthhub.conf", f"{tmp_path}/youthhub.conf")
    if not os.path.exists("/etc/nginx/mime.types"):
        main = main.replace("include /etc/nginx/mime.types;", "")
    (tmp_path / "nginx.conf").write_text(main)
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_a_worker_is_the_same_command_everywhere():
    """`python -m youthhub serve` (Daphne with the access log without addresses) in the
    systemd unit, the image and the cluster script."""
    assert "-m youthhub serve" in (DEPLOY / "systemd" / "youthhub@.service").read_text()
    assert '"-m", "youthhub", "serve"' in (DEPLOY / "Dockerfile").read_text()
    assert '"-m", "youthhub", "serve"' in (DEPLOY / "cluster.py").read_text()
