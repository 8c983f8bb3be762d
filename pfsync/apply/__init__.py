"""Plan → created triggers: the only part of pfsync that talks to Pocketflows.

client              one create-trigger attempt over httpx, classified (sent? created?)
deadline_transport  an httpx transport whose requests end by a deadline
credentials         API credentials from the environment only
applier             parallel creates that never create a trigger twice
run                 one `pfsync apply`: lock, plan, confirm, send, record, summarise
outcome             its progress lines, closing line and exit code (pure)
execute             `pfsync apply` below its flags: credentials, manifests, sandbox, client, run
summary             `apply --summary FILE`: the outcome as Markdown
"""
