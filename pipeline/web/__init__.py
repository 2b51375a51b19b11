"""The reviewers' web pages: server-rendered HTML over the same queries and checks as the JSON API."""
