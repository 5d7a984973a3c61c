"""The fields each kind of source asks the Table API for. No Django import: the sync
benchmark's floor and PySNC roles read it in processes without Django."""

WORK_ITEM_FIELDS = (
    "sys_id",
    "number",
    "short_description",
    "description",
    "state",
    "priority",
    "category",
    "opened_at",
    "resolved_at",
    "closed_at",
    "sys_created_on",
    "sys_updated_on",
    "sys_mod_count",
)
DEFAULT_ATTRIBUTION_FIELDS = ("assigned_to",)
USER_FIELDS = (
    "sys_id",
    "user_name",
    "email",
    "name",
    "first_name",
    "last_name",
    "title",
    "manager",
    "active",
    "sys_updated_on",
    "sys_mod_count",
)
# What an imported evidence item keeps of its record (besides table, sys_id, url, version).
SNAPSHOT_FIELDS = (
    "number",
    "short_description",
    "description",
    "state",
    "priority",
    "category",
    "opened_at",
    "resolved_at",
    "closed_at",
)
AUDIT_DELETE_FIELDS = ("sys_id", "documentkey", "tablename", "sys_created_on")
# The fields whose ServiceNow display value (a choice's label: state 6 is "Resolved") an
# imported evidence item keeps beside the stored value, as snapshot["display"].
DISPLAY_FIELDS = ("state", "priority", "category")
