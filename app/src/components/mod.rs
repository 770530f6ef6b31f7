pub mod activity;
pub mod cells;
pub mod chart;
pub mod feedback;
pub mod forms;
pub mod layout;
pub mod live;
pub mod time;
