"""Where a project's data comes from: the bundle reader and the Procore source, each giving a
`sources.snapshot.ProjectSnapshot`."""
