"""image.yaml: the user's spec, read strictly with file:line errors."""
