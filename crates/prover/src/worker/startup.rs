//! Before the first lease: hello, then the circuits, built or loaded and checked against the
//! coordinator's.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use rayon::ThreadPool;
use sheaf_api::CircuitSpec;
use sheaf_circuits::work::WORK_LEAF_KIND;
use sheaf_circuits::{
    AggregationSettings, ArtifactCache, CircuitSet, KindCatalog, KindParams, NodeRule,
};
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::client::Client;

use super::{error_chain, millis, ProverError, ProverReport, Shutdown, TARGET};

/// Hello, retried with backoff until the coordinator answers; `None` on shutdown.
pub(super) async fn say_hello<F: Future<Output = ()>>(
    client: &Client,
    shutdown: &mut Shutdown<'_, F>,
) -> Result<Option<sheaf_api::HelloResponse>, ProverError> {
    let mut backoff = Backoff::new();
    loop {
        let answer = tokio::select! {
            answer = client.hello() => answer,
            () = shutdown.wait() => return Ok(None),
        };
        match answer {
            Ok(hello) => return Ok(Some(hello)),
            Err(e) if e.is_retryable() => {
                let delay = backoff.next_delay();
                warn!(
                    target: TARGET,
                    coordinator = %client.base_url(),
                    attempt = backoff.failures(),
                    delay_ms = millis(delay),
                    error = %error_chain(&e),
                    "hello failed; retrying"
                );
                shutdown.sleep(delay).await;
            }
            Err(e) => return Err(ProverError::Hello(e)),
        }
    }
}

/// Load or build the coordinator's circuits (its kinds, from `catalog`) in the proving pool;
/// `None` on shutdown. A kind the catalog cannot build is refused before anything is built.
pub(super) async fn load_circuits<F: Future<Output = ()>>(
    spec: &CircuitSpec,
    catalog: &KindCatalog,
    pool: Arc<ThreadPool>,
    cache: Option<ArtifactCache>,
    shutdown: &mut Shutdown<'_, F>,
    report: &mut ProverReport,
) -> Result<Option<CircuitSet>, ProverError> {
    info!(
        target: TARGET,
        profile = %spec.profile,
        arity = spec.arity,
        final_zk = spec.final_zk,
        leaf_rows_log2 = spec.leaf_rows_log2,
        kinds = ?spec.kinds.iter().map(|k| &k.name).collect::<Vec<_>>(),
        kernels = ?spec.kernels,
        cache = ?cache.as_ref().map(|c| c.dir().display().to_string()),
        "loading circuits"
    );
    let started = Instant::now();
    let (spec_owned, catalog) = (spec.clone(), catalog.clone());
    let building = tokio::task::spawn_blocking(move || {
        pool.install(|| build_circuits(&spec_owned, &catalog, cache.as_ref()))
    });
    let circuits = tokio::select! {
        built = building => built.map_err(|e| ProverError::Panicked(e.to_string()))??,
        () = shutdown.wait() => return Ok(None),
    };
    report.circuits_seconds = started.elapsed().as_secs_f64();
    report.circuits_from_cache = circuits.aggregation.from_cache();
    info!(
        target: TARGET,
        seconds = report.circuits_seconds,
        from_cache = report.circuits_from_cache,
        final_key = %circuits.aggregation.final_key().id(),
        "circuits ready"
    );
    Ok(Some(circuits))
}

/// Load or build the circuits `spec` names (its kinds and kernel rules, from `catalog`), on the
/// current thread (or rayon pool). A kind or rule the catalog cannot build is refused before
/// anything is built; the caller checks the result with [`check_circuits`].
pub fn build_circuits(
    spec: &CircuitSpec,
    catalog: &KindCatalog,
    cache: Option<&ArtifactCache>,
) -> Result<CircuitSet, ProverError> {
    let (settings, names, rules) = spec_parts(spec, catalog)?;
    let params = KindParams {
        profile: settings.profile,
        leaf_rows_log2: spec.leaf_rows_log2,
        arity: settings.arity,
    };
    let kinds = catalog
        .build(names.iter().map(String::as_str), &params, cache)
        .map_err(ProverError::Circuits)?;
    CircuitSet::from_parts(settings, kinds, &rules, cache).map_err(ProverError::Circuits)
}

/// As [`build_circuits`], for a claimant that proves only with the `keep` kinds: the set
/// [`CircuitSet::load_lean`] loads, every other kind and node held only as keys, with the same
/// whitelist and final key (checked by [`check_circuits`] too).
pub fn load_lean_circuits(
    spec: &CircuitSpec,
    catalog: &KindCatalog,
    cache: &ArtifactCache,
    keep: &[&str],
) -> Result<CircuitSet, ProverError> {
    let (settings, names, rules) = spec_parts(spec, catalog)?;
    CircuitSet::load_lean(
        settings,
        catalog,
        names.iter().map(String::as_str),
        spec.leaf_rows_log2,
        &rules,
        cache,
        keep,
    )
    .map_err(ProverError::Circuits)
}

/// What a circuit spec names: the settings, the leaf kinds' names and the kernel rules.
type SpecParts = (AggregationSettings, Vec<String>, Vec<Arc<dyn NodeRule>>);

/// The parts of `spec`; refuses a kind or rule `catalog` cannot build.
fn spec_parts(spec: &CircuitSpec, catalog: &KindCatalog) -> Result<SpecParts, ProverError> {
    let settings = AggregationSettings {
        profile: spec.profile.parse().map_err(ProverError::UnknownProfile)?,
        arity: spec.arity,
        final_zk: spec.final_zk,
        final_compact: spec.final_compact,
    };
    // A coordinator older than kinds names none: it runs the work leaf only (its final key,
    // checked after, still has to match).
    let names: Vec<String> = if spec.kinds.is_empty() {
        vec![WORK_LEAF_KIND.to_owned()]
    } else {
        spec.kinds.iter().map(|k| k.name.clone()).collect()
    };
    if let Some(kind) = names.iter().find(|name| !catalog.knows(name)) {
        return Err(ProverError::UnknownKind {
            kind: kind.clone(),
            known: catalog.names().map(str::to_owned).collect(),
        });
    }
    if let Some(rule) = spec.kernels.iter().find(|name| !catalog.knows_rule(name)) {
        return Err(ProverError::UnknownKind {
            kind: format!("kernel:{rule}"),
            known: catalog
                .names()
                .map(str::to_owned)
                .chain(catalog.rule_names().map(|r| format!("kernel:{r}")))
                .collect(),
        });
    }
    let rules = catalog
        .build_rules(spec.kernels.iter().map(String::as_str))
        .map_err(ProverError::Circuits)?;
    Ok((settings, names, rules))
}

/// The prover must prove what the coordinator verifies: same kinds with the same keys, same
/// final key, same whitelist.
pub fn check_circuits(circuits: &CircuitSet, spec: &CircuitSpec) -> Result<(), ProverError> {
    for kind in &spec.kinds {
        let local_key = match circuits.kind_key(&kind.name) {
            Some(key) => key.to_string(),
            None => String::from("none"),
        };
        if local_key != kind.key {
            return Err(ProverError::KindMismatch {
                kind: kind.name.clone(),
                coordinator_key: kind.key.clone(),
                local_key,
            });
        }
    }
    let key = circuits.aggregation.final_key();
    let local_key = key.id().to_string();
    let local_whitelist = key.whitelist_root().to_string();
    if local_key == spec.final_key_id && local_whitelist == spec.whitelist_root {
        Ok(())
    } else {
        Err(ProverError::CircuitMismatch {
            coordinator_key: spec.final_key_id.clone(),
            coordinator_whitelist: spec.whitelist_root.clone(),
            local_key,
            local_whitelist,
        })
    }
}
