"""Manifests + state → a plan: what apply would do, and what needs a person.

planner          the pure planner: (manifests, lockfile) → Plan
diff             field-level differences for `update` entries
remedies         the exact command printed for each change pfsync cannot make
sandbox_wording  apply's progress lines worded for `--sandbox` (until built with Invocation)
run              what `pfsync plan` computes (reads manifests and state, never writes)
saved            saved plans (`plan --out`, `apply FILE`) and their checks
compare          a plan against the base branch's plan (`--base-plan`)
render/          the plan as text, JSON or Markdown (pure)
"""
