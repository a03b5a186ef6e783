//! `Rotation`: exactly once across tasks and instances, saves retried, cancellation safety.
