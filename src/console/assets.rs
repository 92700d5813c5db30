//! The console's files as embedded at build time, looked up by request path.

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));
}

/// Whether the binary carries a built console (false: the placeholder page is served).
pub const CONSOLE_BUILT: bool = !embedded::ASSETS.is_empty();

/// Served at `/` when `console/dist` was missing at build time.
const PLACEHOLDER: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>CLASP console not built</title></head><body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\
<h1>CLASP relay</h1><p>This <code>clasp</code> binary was built without its web console \
(<code>console/dist</code> was missing). Run <code>scripts/setup.sh</code> (or \
<code>npm ci &amp;&amp; npm run build</code> in <code>console/</code>) and rebuild.</p>\
<p>The relay itself works: CLASP clients connect over WebSocket on this port; \
<a href=\"/health\">/health</a> and <a href=\"/metrics\">/metrics</a> are here.</p></body></html>";

/// One file to send.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The bytes.
    pub bytes: &'static [u8],
    /// MIME type from the extension.
    pub content_type: &'static str,
    /// Hashed bundle names never change; the page itself is always revalidated.
    pub cache_control: &'static str,
}

impl Asset {
    /// The file for a request path (`/` is `index.html`), or `None`.
    pub fn find(path: &str) -> Option<Asset> {
        let rel = path.trim_start_matches('/');
        let rel = if rel.is_empty() { "index.html" } else { rel };
        if !CONSOLE_BUILT {
            return (rel == "index.html").then_some(Asset {
                bytes: PLACEHOLDER.as_bytes(),
                content_type: "text/html; charset=utf-8",
                cache_control: "no-cache",
            });
        }
        let (_, bytes) = embedded::ASSETS.iter().find(|(p, _)| *p == rel)?;
        Some(Asset {
            bytes,
            content_type: content_type(rel),
            cache_control: if rel.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            },
        })
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_the_page_and_unknown_paths_are_not_ours() {
        let index = Asset::find("/").expect("a page at /");
        assert!(index.content_type.starts_with("text/html"));
        assert!(String::from_utf8_lossy(index.bytes).contains("CLASP"));
        assert!(Asset::find("/health").is_none());
        assert!(Asset::find("/api/v1/params").is_none());
        assert!(Asset::find("/../Cargo.toml").is_none());
    }

    #[test]
    fn types_follow_the_extension() {
        assert_eq!(
            content_type("assets/a.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("assets/a.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("x.unknown"), "application/octet-stream");
    }
}
