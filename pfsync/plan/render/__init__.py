"""The plan's output formats, each a pure function of a PlanReport.

text           a terminal (colour optional), and the name → renderer table
json_document  the stable, versioned JSON document (also the body of saved plans)
markdown       a pull-request comment
planned_from   what each format says the plan was planned from (commit, base, state, drafts)
"""

# The formats' names, for the command line without importing the renderers (and through them
# the planner and the lockfile) on every run: `text.RENDERERS` has these keys (tested).
FORMATS = ("text", "json", "markdown")
