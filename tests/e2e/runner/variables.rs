//! `spin:variables`: defaults, templates, `SPIN_VARIABLE_*` overrides, required variables.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn variables_come_from_defaults_templates_and_env() {
    let runner = start_probe();
    assert_eq!(
        get(&runner.url("/probe/var/greeting")).await,
        (StatusCode::OK, "hello".into())
    );
    assert_eq!(
        get(&runner.url("/probe/var/motd")).await,
        (StatusCode::OK, "hello, world".into())
    );
    assert_eq!(
        get(&runner.url("/probe/var/secret")).await,
        (StatusCode::OK, SECRET.into())
    );
    let (status, body) = get(&runner.url("/probe/var/not_declared")).await;
    assert!(
        status == StatusCode::NOT_FOUND && body.starts_with("undefined"),
        "undeclared variable gave {status} {body:?}"
    );
    let (status, body) = get(&runner.url("/probe/var/Bad-Name")).await;
    assert!(
        status.is_client_error() || status.is_server_error(),
        "invalid name gave {status} {body:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn env_overrides_variable_default() {
    let runner = Runner::start(
        &probe_manifest(),
        probe_opts().env("SPIN_VARIABLE_GREETING", "howdy"),
    );
    assert_eq!(
        get(&runner.url("/probe/var/greeting")).await,
        (StatusCode::OK, "howdy".into())
    );
    assert_eq!(
        get(&runner.url("/probe/var/motd")).await,
        (StatusCode::OK, "howdy, world".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_required_variable_refuses_to_start() {
    match Runner::try_start(&probe_manifest(), RunnerOpts::default()) {
        Ok(runner) => panic!(
            "started at {} without the required api_secret",
            runner.base_url()
        ),
        Err(failure) => {
            assert!(
                failure.status.is_some_and(|s| !s.success()),
                "expected a non-zero exit, got {:?}\n{}",
                failure.status,
                failure.output()
            );
            assert!(
                failure.output().contains("api_secret"),
                "error does not name the variable:\n{}",
                failure.output()
            );
        }
    }
}
