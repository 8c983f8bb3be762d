"""Manifest files → DesiredTrigger values or located diagnostics.

discovery   which files are manifests (the config's globs, or paths on the command line)
values      `${values.NAME}`: an environment's values substituted into string scalars
load        read, parse and check every file (on every core for large sets)
document    one YAML document → the trigger or declaration it declares, or its problems
across      what no single file shows: duplicate addresses across files, a trigger two
            environments would both create, one problem found in several environments
results     LoadResult (manifests and diagnostics) and Declaring (what a declaration depends
            on beyond its file: the environment's business and values)
declarations  the offline checks of declarations against each other and the triggers
cache       `.pfsync/cache/`: each unchanged file's result, reused
seal        the HMAC that proves a cache file was written by this user on this machine
"""
