"""pfsync: a declarative GitOps reconciler for Pocketflows triggers."""

__version__ = "0.1.0"
