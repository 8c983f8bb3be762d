"""The plan's output formats, each a pure function of a PlanReport.

text           a terminal (colour optional), and the name → renderer table
json_document  the stable, versioned JSON document (also the body of saved plans)
markdown       a pull-request comment
"""
