"""Leaderboard rows in the long format of DESIGN.md section 3."""
