pub mod feedback;
pub mod forms;
pub mod layout;
