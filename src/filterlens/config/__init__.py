"""The workflow's inputs as data: config validation against the packaged schemas, the zoo sheet, dataset facts."""
