//! The dashboard under load: 200 symbols at the feed's full rate, the frame
//! rate measured in the page and printed (no threshold), and the screenshot
//! artefacts `target/dashboard.png` and `target/dashboard-phone.png`. Part
//! of `tests/dashboard.rs`.

use super::{open, phone_width, target_dir, wait_live};

/// Measures in the page: animation frames and ticks over ~300 frames (or 10 s).
const MEASURE_FPS_JS: &str = "
    return new Promise(resolve => {
      const t0 = performance.now(), ticks0 = tickfeed.stats().ticks;
      tickfeed.resetRenderStats();
      let frames = 0, worst = 0, last = t0;
      function step(now) {
        frames += 1; worst = Math.max(worst, now - last); last = now;
        if (frames < 300 && now - t0 < 10000) return requestAnimationFrame(step);
        const s = tickfeed.stats(), secs = (now - t0) / 1000;
        resolve({ fps: frames / secs, secs, worstFrameMs: worst, ticksPerSec: (s.ticks - ticks0) / secs,
                  rows: s.rows, renderAvgMs: s.renderAvgMs, renderMaxMs: s.renderMaxMs });
      }
      requestAnimationFrame(step);
    });";

#[ignore = "long: runs in the long-test step of .ci/run (cargo test -- --ignored)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_with_200_symbols_at_full_rate_reports_its_frame_rate() {
    let (server, b) = open("/?symbols=").await;
    let symbols = b
        .js("return fetch('/api/symbols').then(r => r.json()).then(ticks => ticks.map(t => t.sym).slice(0, 200));")
        .await;
    let symbols: Vec<String> = serde_json::from_value(symbols).expect("symbol names");
    assert_eq!(
        symbols.len(),
        200,
        "the default feed has at least 200 symbols"
    );
    b.goto(&format!(
        "http://{}/?symbols={}",
        server.addr,
        symbols.join(",")
    ))
    .await;
    wait_live(&b).await;
    b.wait_for("200 rows", "return tickfeed.stats().rows === 200;")
        .await;
    b.wait_for("ticks flowing", "return tickfeed.stats().ticks >= 2000;")
        .await;
    b.wait_for(
        "the latency panel to fill in",
        "return /\\d/.test(document.querySelector('#latency [data-k=\"p99\"]').textContent);",
    )
    .await;
    // Candles on the charted symbol (the first, the feed's busiest) for the screenshot.
    b.js("document.querySelector('#chartmode [data-mode=\"candles\"]').click(); return true;")
        .await;
    let m = b.js(MEASURE_FPS_JS).await;
    println!(
        "dashboard fps with {} symbols at full rate: {:.1} fps over {:.1} s ({:.0} ticks/s into the page, \
         worst frame {:.1} ms, render work avg {:.2} ms / max {:.1} ms per frame)",
        m["rows"],
        m["fps"].as_f64().unwrap(),
        m["secs"].as_f64().unwrap(),
        m["ticksPerSec"].as_f64().unwrap(),
        m["worstFrameMs"].as_f64().unwrap(),
        m["renderAvgMs"].as_f64().unwrap(),
        m["renderMaxMs"].as_f64().unwrap(),
    );
    assert!(
        m["ticksPerSec"].as_f64().unwrap() > 0.0,
        "ticks flowed during the measurement"
    );
    let shot = target_dir().join("dashboard.png");
    b.screenshot(&shot).await;
    println!("screenshot: {}", shot.display());
    // And at a phone's width.
    phone_width(&b).await;
    let phone = target_dir().join("dashboard-phone.png");
    b.screenshot(&phone).await;
    println!("screenshot: {}", phone.display());
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}
