//! The access log record: what the host logs for each request, in HTTP_FILTER_LOG's terms
//! so that LOG filters can read and change it before the line is written. Pure, so the
//! line's format is unit-tested anywhere.

/// One log line's fields (HTTP_FILTER_LOG), before and after the LOG notification.
#[derive(Debug, Clone, Default)]
pub struct LogRecord {
    pub client: String,
    pub user: String,
    pub server: String,
    pub operation: String,
    pub target: String,
    pub parameters: String,
    pub status: u32,
    pub win32_status: u32,
    pub bytes_sent: u32,
    pub bytes_received: u32,
    pub milliseconds: u32,
}

impl LogRecord {
    /// `METHOD TARGET[?QUERY] STATUS BYTES`, the host's log line.
    pub fn line(&self) -> String {
        let query = if self.parameters.is_empty() {
            String::new()
        } else {
            format!("?{}", self.parameters)
        };
        format!(
            "{} {}{query} {} {}",
            self.operation, self.target, self.status, self.bytes_sent
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_the_query_only_when_there_is_one() {
        let mut record = LogRecord {
            operation: "GET".into(),
            target: "/app/a".into(),
            status: 200,
            bytes_sent: 12,
            user: "who".into(),
            ..LogRecord::default()
        };
        assert_eq!(record.line(), "GET /app/a 200 12");
        record.parameters = "x=1&y".into();
        assert_eq!(record.line(), "GET /app/a?x=1&y 200 12");
    }
}
