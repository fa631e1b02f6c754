"""What a person looks at: figures of a run and the self-contained report page."""
