//! (placeholder: written by its own work item)
