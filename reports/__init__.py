"""Documents for planners and leaders: KPI workbooks, monthly bulletins, match results."""
