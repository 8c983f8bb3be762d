"""pfsync: a declarative GitOps reconciler for Pocketflows triggers."""

__version__ = "0.2.0"
