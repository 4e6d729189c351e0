"""The demo-data generator behind `twin demo-data`: a plausible Netherlands, written in the formats real
sources deliver, plus a dirty set for the ingest tests. Not on the load path: it may import `twin`,
`layers` and `ingest`; nothing there imports it. Entry point: `demo.generate`; see docs/demo-data.md."""
