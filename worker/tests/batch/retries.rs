//! Stages 4 and 6: posts retried within the invocation, paced, stuck clients skipped but for a probe,
//! and connections still unreached put back on the queue in retry jobs.

use super::*;

#[tokio::test]
async fn throttled_and_failing_posts_are_retried_within_the_invocation_until_they_succeed() {
    let store = with_connections(3, 10).await;
    let poster = Arc::new(ScriptedPoster::default());
    poster.script_times(&id(1), Scripted::Throttled, 3);
    poster.script_times(&id(2), Scripted::Transient, 2);
    let (worker, queue) = worker(store.clone(), poster.clone(), 4);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!((report.delivered, report.retried, report.requeued), (3, 5, 0));
    assert_eq!(poster.recipients().len(), 3);
    assert_eq!(poster.delivered().len(), 3, "each connection exactly once");
    assert_eq!(queue.stats().visible, 0, "nothing left for a retry job");
    assert_eq!(store.inner().len(), 3, "a throttled connection is not pruned");
}

#[tokio::test]
async fn connections_still_failing_near_the_deadline_go_back_on_the_queue_alone() {
    let store = with_connections(6, 10).await;
    let poster = Arc::new(ScriptedPoster::default());
    poster.script(&id(2), Scripted::Throttled);
    poster.script(&id(4), Scripted::Transient);
    let (worker, queue) = worker(store.clone(), poster.clone(), 4);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(1.5)).await;

    assert!(report.failed.is_empty(), "redelivering the message would reach the other four twice");
    assert_eq!((report.delivered, report.requeued), (4, 2));
    assert!(queue.peek().is_empty(), "not visible at once: the retry job waits on the queue");
    let delayed = queue.peek_delayed();
    assert_eq!(delayed.len(), 1);
    let (body, wait) = &delayed[0];
    assert!(*wait > Duration::from_millis(500) && *wait <= Duration::from_secs(1), "{wait:?}");
    let job = Job::parse(body).expect("a retry job");
    assert_eq!(job.attempt, 1);
    let mut targets = targets_of(job);
    targets.sort();
    assert_eq!(targets, [old(2), old(4)], "with their ages, to judge a later 410");
}

#[tokio::test]
async fn a_retry_job_reaches_only_its_targets_without_scanning() {
    let store = with_connections(5, 10).await;
    let poster = Arc::new(ScriptedPoster::default());
    let (worker, queue) = worker(store.clone(), poster.clone(), 4);
    let (envelope, retry) = retry_job(vec![old(1), old(3)], 1);

    let report = worker.process(sqs_event(&[retry]), deadline(30.0)).await;

    assert!(report.failed.is_empty());
    assert_eq!(store.scans(), 0, "a retry job needs no scan");
    let mut recipients: Vec<ConnectionId> = poster.recipients().into_iter().collect();
    recipients.sort();
    assert_eq!(recipients, [id(1), id(3)]);
    let frame: Value = serde_json::from_slice(&poster.delivered()[0].1).expect("json");
    assert_eq!(frame["id"], envelope.id.to_string(), "the retry carries the broadcast's own id");
    assert_eq!(queue.stats().visible, 0);
}

#[tokio::test]
async fn a_broadcast_out_of_attempts_gives_up_on_its_failing_connections() {
    let store = with_connections(3, 10).await;
    let poster = Arc::new(ScriptedPoster::default());
    poster.script(&id(1), Scripted::Transient);
    let (worker, queue) =
        worker_with(store.clone(), poster.clone(), WorkerSettings { max_job_attempts: 2, ..settings() });
    let (_, last_try) = retry_job(vec![old(1), old(2)], 1);

    let report = worker.process(sqs_event(&[last_try]), deadline(1.5)).await;

    assert!(report.failed.is_empty());
    assert_eq!((report.delivered, report.abandoned, report.requeued), (1, 1, 0));
    assert_eq!(queue.stats().visible, 0, "no further retry job");
}

#[tokio::test]
async fn the_post_rate_budget_caps_an_invocations_calls_and_queues_the_rest() {
    let store = with_connections(400, 100).await;
    let poster = Arc::new(ScriptedPoster::default());
    // 20 calls a second with a burst of 10, for an invocation with about a second to post.
    let (worker, queue) = worker_with(
        store.clone(),
        poster.clone(),
        WorkerSettings {
            post_rate: 20,
            account_rate: 20,
            deadline_reserve: Duration::from_millis(100),
            ..settings()
        },
    );
    let started = Instant::now();

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(1.1)).await;

    // However slow this machine, the budget allows at most the burst plus 20/s over the time it took.
    let allowed = 10 + (20.0 * started.elapsed().as_secs_f64()).ceil() as usize;
    assert!(poster.calls() <= allowed, "{} calls, {allowed} allowed", poster.calls());
    assert!(report.requeued > 0, "400 connections cannot all be reached at 20/s in a second");
    assert!(report.delivered >= 10, "the burst alone allows 10: {report:?}");
    assert_eq!(report.delivered + report.requeued, 400, "{report:?}");
    assert!(report.failed.is_empty());
    let queued: usize =
        queue.peek_delayed().iter().map(|(body, _)| targets_of(Job::parse(body).expect("job")).len()).sum();
    assert_eq!(queued, report.requeued);
}

#[tokio::test]
async fn a_forbidden_post_goes_into_a_retry_job_rather_than_redelivering_the_message() {
    let store = with_connections(3, 10).await;
    let poster = Arc::new(ScriptedPoster::default());
    poster.script(&id(2), Scripted::Forbidden);
    let (worker, queue) = worker(store.clone(), poster, 4);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    assert!(report.failed.is_empty());
    assert_eq!((report.delivered, report.requeued), (2, 1));
    assert_eq!(queue.stats().delayed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_keeps_answering_429_costs_the_invocation_its_own_budget_not_the_deadline() {
    let store = with_connections(4, 10).await;
    let poster = Arc::new(ScriptedPoster::default());
    // A client that has stopped reading: its buffer stays full, every post is throttled.
    poster.script(&id(3), Scripted::Throttled);
    let settings = WorkerSettings {
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(2),
        deadline_reserve: Duration::from_secs(3),
        ..settings()
    };
    let (worker, queue) = worker_with(store.clone(), poster.clone(), settings.clone());
    let started = Instant::now();

    let report =
        worker.process(sqs_event(&[broadcast_body(0, "1"), broadcast_body(0, "2")]), deadline(30.0)).await;

    let took = started.elapsed();
    assert!(took <= settings.target_retry_budget + Duration::from_millis(100), "held for {took:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!((report.delivered, report.requeued), (6, 2), "the other three got both broadcasts");
    assert!(report.retried >= 2, "retried within its budget first: {report:?}");
    let delayed = queue.peek_delayed();
    assert_eq!(delayed.len(), 2, "one retry job per broadcast, for the stuck connection alone");
    for (body, wait) in delayed {
        assert_eq!(targets_of(Job::parse(&body).expect("job")), [old(3)]);
        assert_eq!(wait, settings.retry_job_delay, "delayed so that it does not spin");
    }
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_answered_429s_in_a_row_is_skipped_but_for_a_probe_a_second() {
    let store = with_connections(4, 10).await;
    let poster = Arc::new(ScriptedPoster::default());
    poster.script(&id(3), Scripted::Throttled);
    let settings = WorkerSettings { min_backoff: Duration::from_millis(50), ..settings() };
    let (worker, _queue) = worker_with(store.clone(), poster.clone(), settings.clone());

    // A batch of six: six 429s in a row from it, and nothing getting through.
    let batch: Vec<String> = (0..6).map(|n| broadcast_body(0, &n.to_string())).collect();
    let started = Instant::now();
    let first = worker.process(sqs_event(&batch), deadline(30.0)).await;
    assert_eq!((first.delivered, first.requeued), (18, 6), "{first:?}");
    assert!(started.elapsed() < settings.target_retry_budget, "stuck at once, not after its budget");

    // Within the next second: no call to it at all, and no waiting.
    let (started, calls) = (Instant::now(), poster.calls());
    let second = worker.process(sqs_event(&[broadcast_body(0, "2")]), deadline(30.0)).await;
    assert_eq!(started.elapsed(), Duration::ZERO, "held for {:?}", started.elapsed());
    assert_eq!(poster.calls() - calls, 3, "only the three others were posted to");
    assert_eq!((second.delivered, second.requeued, second.retried), (3, 1, 0), "{second:?}");

    // Nor from a retry job: it goes into the next one.
    let calls = poster.calls();
    let (_, retry) = retry_job(vec![old(3)], 1);
    let retried = worker.process(sqs_event(&[retry]), deadline(30.0)).await;
    assert_eq!((poster.calls() - calls, retried.requeued, retried.retried), (0, 1, 0), "{retried:?}");

    // A second on, one probe: it fails, without retries.
    tokio::time::advance(settings.probe_every).await;
    let third = worker.process(sqs_event(&[broadcast_body(0, "3")]), deadline(30.0)).await;
    assert_eq!((third.delivered, third.requeued, third.retried), (3, 1, 0), "{third:?}");

    // The client catches up: the next probe reaches it, and it is stuck no more.
    poster.unscript(&id(3));
    tokio::time::advance(settings.probe_every).await;
    let fourth = worker.process(sqs_event(&[broadcast_body(0, "4")]), deadline(30.0)).await;
    assert_eq!((fourth.delivered, fourth.requeued), (4, 0), "{fourth:?}");
    poster.script_times(&id(3), Scripted::Throttled, 2);
    let fifth = worker.process(sqs_event(&[broadcast_body(0, "5")]), deadline(30.0)).await;
    assert_eq!((fifth.delivered, fifth.retried), (4, 2), "retried again once it had recovered: {fifth:?}");
}

#[tokio::test(start_paused = true)]
async fn a_connection_failing_with_server_errors_is_not_taken_for_a_stuck_one() {
    let store = with_connections(2, 10).await;
    let poster = Arc::new(ScriptedPoster::default());
    poster.script(&id(1), Scripted::Transient);
    let (worker, _queue) = worker_with(
        store,
        poster.clone(),
        WorkerSettings { min_backoff: Duration::from_millis(50), ..settings() },
    );
    for n in 0..2 {
        let report = worker.process(sqs_event(&[broadcast_body(0, &n.to_string())]), deadline(30.0)).await;
        assert!(report.retried > 0, "retried within its budget each time: {report:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn each_later_retry_job_waits_twice_as_long_on_the_queue() {
    let store = with_connections(3, 10).await;
    let poster = Arc::new(ScriptedPoster::default());
    poster.script(&id(1), Scripted::Throttled);
    let (worker, queue) = worker(store, poster, 4);
    for (attempt, expected) in [(1, 2), (2, 4), (3, 8)] {
        let (_, retry) = retry_job(vec![old(1)], attempt);
        let report = worker.process(sqs_event(&[retry]), deadline(30.0)).await;
        assert_eq!(report.requeued, 1, "attempt {attempt}");
        let delayed = queue.peek_delayed();
        let (body, wait) = delayed.last().expect("a retry job");
        assert_eq!(Job::parse(body).expect("job").attempt, attempt + 1);
        assert_eq!(*wait, Duration::from_secs(expected), "attempt {attempt}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_invocation_stops_posting_at_its_reserve_and_queues_the_rest_whatever_its_pace() {
    let store = with_connections(20_000, 7_000).await;
    // Each call takes 40 ms, as from Lambda to API Gateway.
    let poster = Arc::new(ScriptedPoster::with_delay(Duration::from_millis(40)));
    let (worker, _queue) = worker_with(
        store.clone(),
        poster.clone(),
        WorkerSettings {
            post_concurrency: 64,
            post_rate: 2_000,
            account_rate: 2_000,
            shard_size: 0,
            deadline_reserve: Duration::from_secs(3),
            ..settings()
        },
    );
    let started = Instant::now();

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(5.0)).await;

    let took = started.elapsed();
    assert!(took < Duration::from_millis(2_500), "the invocation ran {took:?} of its 5 s");
    assert!(report.requeued > 10_000, "{report:?}");
    assert_eq!(report.delivered + report.requeued, 20_000, "{report:?}");
}
