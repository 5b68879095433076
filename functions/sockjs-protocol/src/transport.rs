//! The SockJS receiving transports: how each wraps frames, what it sends first, and whether
//! it streams or answers once.

/// A receiving transport (the URL's last segment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// `POST …/xhr`: one frame per response.
    XhrPolling,
    /// `POST …/xhr_streaming`: frames as lines after a 2 KiB prelude.
    XhrStreaming,
    /// `GET …/eventsource`: frames as SSE `data:` events.
    EventSource,
    /// `GET …/htmlfile?c=cb`: frames as `<script>` calls in a forever-loading page.
    HtmlFile {
        /// The parent's callback name.
        callback: String,
    },
    /// `GET …/jsonp?c=cb`: one frame per response, as a script call.
    Jsonp {
        /// The callback name.
        callback: String,
    },
}

/// Bytes of `h` in the xhr-streaming prelude: browsers (old IE) buffer the first 2 KiB.
const XHR_PRELUDE_BYTES: usize = 2048;

/// The htmlfile page is padded to this many bytes so browsers start running it at once.
const HTMLFILE_PAD_TO: usize = 1024;

impl Transport {
    /// Whether the response stays open for more frames.
    pub fn streams(&self) -> bool {
        matches!(
            self,
            Transport::XhrStreaming | Transport::EventSource | Transport::HtmlFile { .. }
        )
    }

    /// The response's content type.
    pub fn content_type(&self) -> &'static str {
        match self {
            Transport::XhrPolling | Transport::XhrStreaming | Transport::Jsonp { .. } => {
                "application/javascript; charset=UTF-8"
            }
            Transport::EventSource => "text/event-stream; charset=UTF-8",
            Transport::HtmlFile { .. } => "text/html; charset=UTF-8",
        }
    }

    /// What the response starts with, before any frame.
    pub fn prelude(&self) -> String {
        match self {
            Transport::XhrStreaming => {
                let mut p = "h".repeat(XHR_PRELUDE_BYTES);
                p.push('\n');
                p
            }
            Transport::EventSource => "\r\n".to_owned(),
            Transport::HtmlFile { callback } => htmlfile_prelude(callback),
            Transport::XhrPolling | Transport::Jsonp { .. } => String::new(),
        }
    }

    /// One frame as this transport writes it.
    pub fn wrap(&self, frame: &str) -> String {
        match self {
            Transport::XhrPolling | Transport::XhrStreaming => format!("{frame}\n"),
            Transport::EventSource => format!("data: {}\r\n\r\n", escape_for_eventsource(frame)),
            Transport::HtmlFile { .. } => {
                // `<` as `\u003c` (the same JSON string) so a message holding `</script>`
                // cannot end the script element early.
                let quoted = crate::frame::quote(frame).replace('<', "\\u003c");
                format!("<script>\np({quoted});\n</script>\r\n")
            }
            Transport::Jsonp { callback } => {
                format!("/**/{callback}({});\r\n", crate::frame::quote(frame))
            }
        }
    }
}

/// SockJS's `escape_selected(frame, "\r\n\0")`: the client runs `decodeURI` on each event, so
/// `%` and the bytes that would break an SSE line are percent-encoded.
fn escape_for_eventsource(frame: &str) -> String {
    let mut out = String::with_capacity(frame.len());
    for c in frame.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            '\0' => out.push_str("%00"),
            c => out.push(c),
        }
    }
    out
}

/// The htmlfile page head that calls `parent.<callback>`, padded to 1 KiB.
fn htmlfile_prelude(callback: &str) -> String {
    let mut page = format!(
        "<!doctype html>\n<html><head>\n  \
         <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
         <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n\
         </head><body><h2>Don't panic!</h2>\n  <script>\n    \
         document.domain = document.domain;\n    \
         var c = parent.{callback};\n    c.start();\n    \
         function p(d) {{c.message(d);}};\n    \
         window.onload = function() {{c.stop();}};\n  </script>"
    );
    let pad = HTMLFILE_PAD_TO.saturating_sub(page.len()) + 14;
    page.push_str(&" ".repeat(pad));
    page.push_str("\r\n\r\n");
    page
}

/// Longest JSONP callback (sockjs-node's limit).
pub const JSONP_CALLBACK_MAX: usize = 32;

/// Longest htmlfile callback (sockjs-node has none; ids it generates are 11 characters).
pub const HTMLFILE_CALLBACK_MAX: usize = 256;

/// SockJS's rule for `c=` callback names: letters, digits, `-`, `_`, `.`; anything else could
/// inject script.
pub fn valid_callback(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_frames_per_transport() {
        assert_eq!(Transport::XhrPolling.wrap("o"), "o\n");
        assert_eq!(
            Transport::EventSource.wrap("a[\"x\"]"),
            "data: a[\"x\"]\r\n\r\n"
        );
        assert_eq!(
            Transport::EventSource.wrap("a[\"50%\r\n\0\"]"),
            "data: a[\"50%25%0D%0A%00\"]\r\n\r\n"
        );
        let jsonp = Transport::Jsonp {
            callback: "cb".into(),
        };
        assert_eq!(jsonp.wrap("a[\"x\"]"), "/**/cb(\"a[\\\"x\\\"]\");\r\n");
        let html = Transport::HtmlFile {
            callback: "cb".into(),
        };
        assert_eq!(html.wrap("o"), "<script>\np(\"o\");\n</script>\r\n");
        // A `</script>` inside a message cannot end the script element early.
        assert!(!html.wrap("a[\"</script>\"]").contains("</script>\"]"));
    }

    #[test]
    fn preludes_have_their_sizes() {
        let x = Transport::XhrStreaming.prelude();
        assert_eq!(x.len(), 2049);
        assert!(x.ends_with("h\n"));
        let h = Transport::HtmlFile {
            callback: "cb".into(),
        }
        .prelude();
        assert!(h.len() > 1024, "{}", h.len());
        assert!(h.contains("var c = parent.cb;"));
        assert!(h.ends_with("\r\n\r\n"));
    }

    #[test]
    fn callbacks_are_validated() {
        for ok in ["cb", "a.b_c-1", "_jp.a0", &"a".repeat(32)] {
            assert!(valid_callback(ok, JSONP_CALLBACK_MAX), "{ok}");
        }
        for bad in ["", "a(b)", "a;b", "a<b", "a b", "x\"", &"a".repeat(33)] {
            assert!(!valid_callback(bad, JSONP_CALLBACK_MAX), "{bad}");
        }
    }
}
