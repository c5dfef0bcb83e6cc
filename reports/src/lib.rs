//! Summaries, delivery curves, histograms, tables and graphs from an alert ledger.
