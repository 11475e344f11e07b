"""bertcheck's properties of HF's BERT and of a candidate: shipped inside the package as
`bertcheck.suite`, so the pytest plugin can collect them in any project (`bertcheck.plugin`)."""
