"""The few helpers every layer needs; nothing here knows about triggers, plans or state.

atomic        replace a file so readers see the old text or the new, never a mix
canonical     RFC 8785 canonical JSON and the body digest
collector     the cyclic garbage collector paused while loading (the data hold no cycles)
diagnostics   Diagnostic: one located problem in a file, and its output formats
invocation    the command a person is told to run, built from the running invocation
paths         how a path is shown to the user
placeholders  the business id `pfsync init` writes when given none
signals       signal handlers held for a block, the previous ones put back
suggest       "did you mean": a known name close enough to a mistyped one
textsafety    outside text made safe to show and to store; secrets kept out of output
workers       independent work spread over the machine's cores
yamlfile      a YAML file read safely: size, type and encoding checked
yamlload      safe YAML → JSON values with the position of every value
yamlsyntax    YamlProblem, and YAML syntax errors worded with their usual cause
"""
