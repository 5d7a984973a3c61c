"""The sync engine: keyset paging from the Table API into work items, people and evidence.

One run reads `BASE ∧ (ts, sys_id) > cursor ∧ ts ≤ upper` page by page, ordered by
(sys_updated_on, sys_id), with no offsets. Each page's upserts, the cursor and the run's
counters commit in one transaction, so a run killed at any point resumes from its last page
and converges: the next run starts `overlap` seconds before the cursor, and an incoming row
older than the stored one (by sys_updated_on, then sys_mod_count) is skipped.

Facts this relies on (DESIGN.md, "ServiceNow sync"): pages may come back short when ACLs
hide rows (X-Total-Count still counts them), may repeat a row, and rows change while we page;
the upper bound fixed at the start keeps a run finite, and edits after it land in the next
run's window.

By concern (docs/architecture.md):
- `fields`: the fields each source asks for (no Django import: benchmarks read it);
- `paging`: the keyset pager and the row helpers it and the writers share;
- `choices`: a table's choice labels, read once from sys_choice (pages come as raw values);
- `prepare`: a page of work items made ready to store, and each record's candidate base
  (no Django: the fetching process runs it too);
- `pipeline`: a full run's fetching process (fetch, decode, prepare) beside the one that
  stores;
- `workitems`: the work-item writer (stale check, insert/upsert, candidates owed);
- `attribution`: late attribution, for people who became known after their work items;
- `rules`: suggestion rules matched against a record;
- `users`: `sys_user` pages handed to `apps.people` as plain data;
- `progress`: counters and the per-page progress of a run;
- `runs`: a run's lifecycle (start, execute, fail) and one attempt of it end to end;
- `backfill`: a large full run as disjoint sys_created_on windows, run by window tasks in
  parallel, each resumable, the run's counters their sum.

Imported evidence is written by `apps.evidence.candidates`, people by `apps.people.services`:
the sync hands them plain data.
"""
