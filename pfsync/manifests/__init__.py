"""Manifest files → DesiredTrigger values or located diagnostics.

discovery   which files are manifests (the config's globs, or paths on the command line)
load        read, parse and check every file; duplicate addresses across files
"""
