"""Command line: `python -m youthhub serve [daphne options]` and `python -m youthhub demo`.

`serve` is Daphne with youthhub's address-free access log; every Daphne option works
(`--bind`, `--port`, `--fd`, `-u` ...). `demo` migrates, seeds the demo data and serves
the embedded default on http://127.0.0.1:8000/.
"""

import os
import sys


def serve(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "youthhub.settings")
    import daphne.cli

    from youthhub.privacy import AnonymousAccessLog

    # Daphne builds its access logger from this name; swap in the one without addresses.
    daphne.cli.AccessLogGenerator = AnonymousAccessLog
    daphne.cli.CommandLineInterface().run([*argv, "youthhub.asgi:application"])


def demo(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "youthhub.settings")
    # The demo logs in with a password only, unless asked (YOUTHHUB_REQUIRE_2FA=1 make run).
    os.environ.setdefault("YOUTHHUB_REQUIRE_2FA", "0")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("seed_demo")
    port = "8000"
    if "--port" in argv:
        port = argv[argv.index("--port") + 1]
    else:
        argv = [*argv, "--port", port]
    if "--bind" not in argv and "-b" not in argv:
        argv = [*argv, "--bind", "127.0.0.1"]
    print(f"\n  Youth chat:  http://127.0.0.1:{port}/")
    print(f"  Drop-in:     http://127.0.0.1:{port}/dropin/tonsberg/kiosk/   (kiosk tablet)")
    print(
        f"  Staff:       http://127.0.0.1:{port}/staff/   (logins above; partners land on /partner/)"
    )
    print(f"  Statistics:  http://127.0.0.1:{port}/supervisor/stats/   (supervisor mona)")
    if os.environ.get("YOUTHHUB_REQUIRE_2FA") in ("0", "false", "no", "off", ""):
        print("  Two-factor login is off in the demo (YOUTHHUB_REQUIRE_2FA=1 make run: on).")
    print(
        "  (fill them with `.venv/bin/python manage.py simulate_traffic --weeks 2`)\n", flush=True
    )
    serve(argv)


def main() -> None:
    commands = {"serve": serve, "demo": demo}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print("usage: python -m youthhub {serve|demo} [daphne options]", file=sys.stderr)
        sys.exit(2)
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
