//! HTTP route matching with Spin's semantics.
//!
//! Patterns are exact (`/v1/publish`), parameterised (`/v1/history/:channel`) or wildcard
//! (`/v1/...`, `/...`). The most specific pattern wins: an exact or parameterised match beats
//! any wildcard, literal segments beat parameters, and among wildcards the longer prefix wins.
//! This mirrors `spin up`, so a request reaches the same component on both hosts.

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// A compiled route pattern.
#[derive(Debug, Clone)]
pub struct Route {
    pattern: String,
    segments: Vec<Segment>,
    wildcard: bool,
    /// Index into the router's component table.
    pub target: usize,
}

/// What a request matched: used for dispatch and for the `spin-*` request headers.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteMatch {
    /// Index of the component that serves the request.
    pub target: usize,
    /// The pattern as written in the manifest (`spin-matched-route`).
    pub pattern: String,
    /// The pattern without a trailing `/...` (`spin-component-route`).
    pub component_route: String,
    /// The part of the path after the wildcard prefix (`spin-path-info`), empty otherwise.
    pub path_info: String,
    /// Named parameters (`spin-path-match-<name>`).
    pub params: Vec<(String, String)>,
}

impl Route {
    /// Compiles a pattern.
    ///
    /// # Errors
    /// `...` appears anywhere but as the last segment, or a parameter has no name.
    pub fn new(pattern: &str, target: usize) -> anyhow::Result<Self> {
        let trimmed = pattern.trim_end_matches('/');
        let (body, wildcard) = match trimmed.strip_suffix("/...") {
            Some(b) => (b, true),
            None if trimmed == "..." => ("", true),
            None => (trimmed, false),
        };
        let mut segments = Vec::new();
        for seg in body.split('/').filter(|s| !s.is_empty()) {
            if seg == "..." {
                anyhow::bail!("route {pattern:?}: '...' may only end a route");
            }
            if let Some(name) = seg.strip_prefix(':') {
                if name.is_empty() {
                    anyhow::bail!("route {pattern:?}: parameter without a name");
                }
                segments.push(Segment::Param(name.to_string()));
            } else {
                segments.push(Segment::Literal(seg.to_string()));
            }
        }
        Ok(Self {
            pattern: pattern.to_string(),
            segments,
            wildcard,
            target,
        })
    }

    /// Specificity used to order candidate matches (higher wins).
    fn rank(&self) -> (bool, usize, usize) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        (!self.wildcard, self.segments.len(), literals)
    }

    fn matches(&self, path: &str) -> Option<RouteMatch> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() < self.segments.len()
            || (!self.wildcard && parts.len() != self.segments.len())
        {
            return None;
        }
        let mut params = Vec::new();
        for (seg, part) in self.segments.iter().zip(&parts) {
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.clone(), (*part).to_string())),
            }
        }
        let path_info = if self.wildcard {
            let rest = &parts[self.segments.len()..];
            if rest.is_empty() {
                String::new()
            } else {
                let mut s = format!("/{}", rest.join("/"));
                if path.ends_with('/') {
                    s.push('/');
                }
                s
            }
        } else {
            String::new()
        };
        let component_route = self
            .pattern
            .trim_end_matches('/')
            .trim_end_matches("...")
            .trim_end_matches('/')
            .to_string();
        Some(RouteMatch {
            target: self.target,
            pattern: self.pattern.clone(),
            component_route,
            path_info,
            params,
        })
    }
}

/// All routes of an application.
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Builds a router; routes are ordered by specificity once, not per request.
    pub fn new(mut routes: Vec<Route>) -> Self {
        routes.sort_by_key(|r| std::cmp::Reverse(r.rank()));
        Self { routes }
    }

    /// Finds the most specific route for a path (no query string).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        self.routes.iter().find_map(|r| r.matches(path))
    }

    /// The patterns, for the startup banner.
    pub fn patterns(&self) -> impl Iterator<Item = (&str, usize)> {
        self.routes.iter().map(|r| (r.pattern.as_str(), r.target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::new(
            [
                ("/...", 0),
                ("/v1/...", 1),
                ("/v1/publish", 2),
                ("/v1/history/:channel", 3),
                ("/comet/...", 4),
            ]
            .iter()
            .map(|(p, t)| Route::new(p, *t).expect("valid"))
            .collect(),
        )
    }

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let r = router();
        assert_eq!(r.route("/v1/publish").map(|m| m.target), Some(2));
        assert_eq!(r.route("/v1/poll").map(|m| m.target), Some(1));
        assert_eq!(r.route("/v1").map(|m| m.target), Some(1));
        assert_eq!(r.route("/other").map(|m| m.target), Some(0));
        assert_eq!(r.route("/").map(|m| m.target), Some(0));
    }

    #[test]
    fn wildcard_reports_path_info_and_component_route() {
        let m = router().route("/comet/abc/def/xhr").expect("match");
        assert_eq!(m.path_info, "/abc/def/xhr");
        assert_eq!(m.component_route, "/comet");
        assert_eq!(m.pattern, "/comet/...");
    }

    #[test]
    fn parameters_are_captured() {
        let m = router().route("/v1/history/chat").expect("match");
        assert_eq!(m.target, 3);
        assert_eq!(m.params, vec![("channel".to_string(), "chat".to_string())]);
    }

    #[test]
    fn no_route_without_catch_all() {
        let r = Router::new(vec![Route::new("/a", 0).expect("valid")]);
        assert!(r.route("/b").is_none());
        assert!(r.route("/a/b").is_none());
    }

    #[test]
    fn rejects_wildcard_in_the_middle() {
        assert!(Route::new("/a/.../b", 0).is_err());
    }
}
