"""The app handlers and views: plain functions, unit-tested without a browser."""
