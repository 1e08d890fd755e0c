//! Fakes, mocks and the storage contract suite for tests (feature `test-util`).
