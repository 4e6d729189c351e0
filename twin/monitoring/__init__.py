"""Monitoring the quality of supervision (issue 22): KPI definitions, their computation over periods and
dimensions, the statistics, the disclosure control of public figures and the queries the API serves."""
