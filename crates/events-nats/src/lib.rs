//! The NATS event bus: conversation events shared by every confab instance of a
//! cluster. Being written; see issue 13.
