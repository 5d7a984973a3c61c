"""DRF's clear-text tokens (rest_framework.authtoken, no longer installed) become hashed
ApiToken rows, so existing clients keep working with the key they have; then the clear
text is deleted. On a database that never had authtoken there is nothing to do."""

import hashlib
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

OLD_TABLE = "authtoken_token"


def hash_existing_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("security", "ApiToken")
    quoted = schema_editor.quote_name(OLD_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {quoted}")  # noqa: S608
        rows = cursor.fetchall()
    # counted from now, not from `created`: a client that worked yesterday keeps working
    # for the default lifetime, giving its owner time to replace the token
    expires_at = timezone.now() + timedelta(days=settings.API_TOKEN_DEFAULT_DAYS)
    def aware(created):
        if not isinstance(created, datetime):  # SQLite may hand back text
            return timezone.now()
        # SQLite's raw rows are naive; Django stored them in UTC
        return created if timezone.is_aware(created) else created.replace(tzinfo=UTC)

    ApiToken.objects.bulk_create(
        [
            ApiToken(
                user_id=user_id,
                name="migrated token",
                prefix=key[:8],
                key_hash=hashlib.sha256(key.encode()).hexdigest(),
                created_at=aware(created),
                expires_at=expires_at,
            )
            for key, user_id, created in rows
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quoted}")  # noqa: S608


class Migration(migrations.Migration):
    dependencies = [
        ("security", "0001_tokens_and_audit_trail"),
    ]

    operations = [
        migrations.RunPython(hash_existing_tokens, migrations.RunPython.noop, elidable=True),
    ]
