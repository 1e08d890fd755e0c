//! A smoke run of every scenario and floor with tiny counts against a server started
//! in-process on a fresh SQLite file: the load generator keeps working as the API
//! evolves. Nothing here asserts a time; the figures are only checked for being whole.

use std::net::SocketAddr;

use confab_loadgen::client::Api;
use confab_loadgen::cluster::{self, Cluster};
use confab_loadgen::report::{Report, table};
use confab_loadgen::{fanout, floor, scenarios, seeded};
use confab_server::{App, Config};

fn assert_complete(report: &Report, operations: u64) {
    assert_eq!(
        report.operations,
        operations,
        "{}",
        table(std::slice::from_ref(report))
    );
    assert!(report.p50_us <= report.p99_us && report.p99_us <= report.max_us);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_to_completion_against_a_real_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("smoke.db").display()
    );
    let app = App::build(Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: database_url.clone(),
        jwt_secret: Some("smoke-secret-smoke-secret-smoke-secret".to_owned()),
        ..Config::default()
    })
    .await
    .expect("server builds");
    let address = app.local_addr();
    let api = Api::new(&format!("http://{address}")).expect("client");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let rest = scenarios::send_rest(&api, 2, 5, 0)
        .await
        .expect("send rest");
    assert_complete(&rest, 10);
    let ws = scenarios::send_ws(&api, 2, 10, 4, 300)
        .await
        .expect("send ws");
    assert_complete(&ws, 20);
    let roundtrip = scenarios::roundtrip(&api, 5, 0).await.expect("roundtrip");
    assert_complete(&roundtrip, 5);
    let loaded = scenarios::roundtrip(&api, 5, 200)
        .await
        .expect("roundtrip under load");
    assert_complete(&loaded, 5);
    let fanned = fanout::fanout(&api, 3, 6, 2, 100).await.expect("fanout");
    assert_complete(&fanned, 18);
    // Each socket sees at least the six messages and their six replies.
    assert!(fanned.extra["frames"] >= 36.0);
    let history = seeded::history(&api, &database_url, 120, 10, false)
        .await
        .expect("history");
    assert_complete(&history, 10);
    let by_time = seeded::history(&api, &database_url, 120, 10, true)
        .await
        .expect("history by time");
    assert_complete(&by_time, 10);
    let export = seeded::export(&api, &database_url, 120, Some(std::process::id()))
        .await
        .expect("export");
    assert_complete(&export, 1);
    assert!(export.extra.contains_key("rss_peak_mib"));
    let list = scenarios::list(&api, 20, 6).await.expect("list");
    assert_complete(&list, 6);
    let sockets = scenarios::sockets(&api, 10, 4, Some(std::process::id()))
        .await
        .expect("sockets");
    assert_complete(&sockets, 10);
    assert!(sockets.extra.contains_key("kib_per_socket"));

    // The same server under two URLs stands in for two instances: the round robin,
    // the round trip's "other instance" and the audits run as in a cluster.
    let url = format!("http://{address}");
    let nodes = Cluster::new(&[url.clone(), url], vec![std::process::id()]).expect("cluster");
    let limit = std::time::Duration::from_secs(60);
    let rest = cluster::send_rest(&nodes, 3, 4, limit)
        .await
        .expect("cluster send rest");
    assert_complete(&rest, 12);
    assert!(rest.extra.contains_key("confab_cores"));
    let ws = cluster::send_ws(&nodes, 3, 6, 2, limit)
        .await
        .expect("cluster send ws");
    assert_complete(&ws, 18);
    let roundtrip = cluster::roundtrip(&nodes, 5, limit)
        .await
        .expect("cluster roundtrip");
    assert_complete(&roundtrip[0], 5);
    assert_complete(&roundtrip[1], 5);
    let all = [rest, ws, roundtrip[0].clone(), roundtrip[1].clone()];
    assert_eq!(cluster::misbehaviour(&all), Vec::<String>::new());

    let _ = stop.send(());
    server.await.expect("server task").expect("server stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floors_run_to_completion() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = floor::sqlite(&dir.path().join("floor.db"), 100, 10)
        .await
        .expect("sqlite floor");
    assert_complete(&sqlite[0], 100);
    // 100 rows in batches of 64: two transactions.
    assert_complete(&sqlite[1], 2);
    assert!(sqlite[1].extra["rows_per_s"] > 0.0);
    assert_complete(&sqlite[2], 10);
    let echo = floor::ws_echo(2, 10, 4).await.expect("ws echo floor");
    assert_complete(&echo[0], 10);
    assert_complete(&echo[1], 20);
    let page = floor::http_page(10).await.expect("http page floor");
    assert_complete(&page, 10);
}

/// The PostgreSQL floor on a database of its own, when the suite has PostgreSQL
/// (`CONFAB_TEST_POSTGRES_URL`, which CI always sets); otherwise it says so and passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_floor_runs_to_completion() {
    use sea_orm::sqlx::{self, Connection as _, PgConnection};

    let Ok(admin_url) = std::env::var("CONFAB_TEST_POSTGRES_URL") else {
        eprintln!("CONFAB_TEST_POSTGRES_URL is not set: the PostgreSQL floor is not run");
        return;
    };
    let name = format!("confab_floor_smoke_{}", uuid::Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&admin_url).await.expect("PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("a floor database");
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(base, _)| base);
    let reports = floor::postgres(&format!("{base}/{name}"), 160, 10).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .expect("the floor database dropped");
    let reports = reports.expect("postgres floor");
    // 16 writers of 10 rows, then 160 rows in batches of 64, then 10 pages.
    assert_complete(&reports[0], 160);
    assert_complete(&reports[1], 3);
    assert_complete(&reports[2], 10);
}
