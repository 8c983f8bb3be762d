"""The record of what exists: the lockfile, its journal, the state lock and the stores.

lockfile         `pfsync.lock`: read with full checks, written atomically
trigger_records  what the lockfile records per address (trigger, history, pending create)
journal          the write-ahead journal of an apply, folded afterwards
journal_records  the journal's record types
changes          pure transitions of a lockfile (forget, move, import, outcomes)
declared         declarations carried out on a lockfile (pure)
transaction      the Transaction and RunJournal protocols every store's changes implement
lock             one state-changing command at a time per lockfile
lock_record      a remote store's lock record (its holder, CI job, takeover)
access           lockfile + journal + lock (or a remote store) opened for a command
commands         `state rm`, `mv`, `import`, `unlock`
ci_job           which CI run and job this process is, from the CI's environment
render           what `state list` and `state show` print
stores/          where the lockfile lives: file, git, s3; the remote apply protocol
"""
