"""The stored form of a per-record data key (a conversation's, a handover's): wrapped by a
master key from YOUTHHUB_DATA_KEYS, with the master key's id. Destroying it (wrapped = None)
makes everything sealed under it unreadable for good, backups included."""

from django.db import models

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

    def unwrap(self, context: str) -> bytes | None:
        """The data key, or None once destroyed."""
        if self.wrapped is None:
            return None
        return crypto.unwrap_data_key(self.master_key_id, bytes(self.wrapped), context=context)
