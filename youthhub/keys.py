"""The stored form of a per-record data key (a conversation's, a handover's): wrapped by a
master key from YOUTHHUB_DATA_KEYS, with the master key's id. Destroying it (wrapped = None)
makes everything sealed under it unreadable for good, backups included."""

from django.apps import apps
from django.db import models, transaction

from . import crypto


class WrappedKey(models.Model):
    master_key_id = models.CharField(max_length=16)
    wrapped = models.BinaryField(null=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @staticmethod
    def wrap_new(context: str) -> tuple[bytes, dict]:
        """A new data key and the fields that store it wrapped: (key, {master_key_id, wrapped})."""
        key = crypto.new_data_key()
        key_id, wrapped = crypto.wrap_data_key(key, context=context)
        return key, {"master_key_id": key_id, "wrapped": wrapped}

    def context(self) -> str:
        """What the key is bound to (the associated data of its wrapping): one row, no other."""
        raise NotImplementedError

    def unwrap(self, context: str) -> bytes | None:
        """The data key, or None once destroyed."""
        if self.wrapped is None:
            return None
        return crypto.unwrap_data_key(self.master_key_id, bytes(self.wrapped), context=context)


def wrapped_key_models() -> list[type[WrappedKey]]:
    return [m for m in apps.get_models() if issubclass(m, WrappedKey)]


def keys_by_master() -> dict[str, dict[str, int]]:
    """How many live data keys each master key wraps, per model: {model label: {id: n}}."""
    out = {}
    for model in wrapped_key_models():
        rows = (
            model.objects.exclude(wrapped=None)
            .values_list("master_key_id")
            .annotate(n=models.Count("pk"))
        )
        out[model._meta.label] = dict(rows)
    return out


def rewrap_keys(*, batch: int = 500) -> dict[str, int]:
    """Re-wrap every live data key that an older master key wraps under the current one, so
    the older master key can leave YOUTHHUB_DATA_KEYS. The data keys themselves (and so every
    sealed text) stay as they are. Batches of `batch` rows, each in its own transaction with
    the rows locked (a purge destroying one of them at the same time waits, then finds it
    re-wrapped; one destroyed meanwhile is skipped). Safe to stop and run again. Returns the
    number re-wrapped per model label."""
    current = crypto.keyring().current_id
    done = {}
    for model in wrapped_key_models():
        done[model._meta.label] = 0
        while True:
            with transaction.atomic():
                rows = list(
                    model.objects.select_for_update(skip_locked=True)
                    .exclude(master_key_id=current)
                    .exclude(wrapped=None)
                    .order_by("pk")[:batch]
                )
                for row in rows:
                    data_key = row.unwrap(row.context())
                    row.master_key_id, row.wrapped = crypto.wrap_data_key(
                        data_key, context=row.context()
                    )
                    row.save(update_fields=["master_key_id", "wrapped"])
            done[model._meta.label] += len(rows)
            if len(rows) < batch:
                break
    return done
