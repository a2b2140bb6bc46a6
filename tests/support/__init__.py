"""Helpers the tests share: servers started and stopped by PID (processes, label_studio), the browser
(browser), fake predictors and extract folders (extract_fakes, review_corpus)."""
