"""Manifests + state → a plan: what apply would do, and what needs a person.

planner          the pure planner: (manifests, lockfile) → Plan
entries          the plan's values: the actions, PlanEntry, Plan, the summary line, exit codes
diff             field-level differences for `update` entries
remedies         the exact command printed for each change pfsync cannot make
run              what `pfsync plan` computes (reads manifests and state, never writes)
saved            saved plans (`plan --out`, `apply FILE`) and their checks
after            `--after ENV`: only the creates ENV's record holds from the same document
compare          a plan against the base branch's plan (`--base-plan`)
checkout         what a plan is planned from: the git commit, uncommitted changes, state read
render/          the plan as text, JSON or Markdown (pure)
"""
