use quorate_check::generate::{generate, GenConfig};
use quorate_check::history::pair;
use quorate_check::linearizability::Limits;
use quorate_check::sequential::check_sequential;
fn main() {
    for n in [100, 200, 300, 400] {
        for seed in 0..200 {
            let config = GenConfig { operations: n, keys: 10, processes: 16, seed, cas: false, info_ppm: 10000, ..GenConfig::default() };
            let events = generate(&config);
            let ops = pair(&events).unwrap();
            let t = std::time::Instant::now();
            let deadline = t + std::time::Duration::from_millis(300);
            let c = move || std::time::Instant::now() > deadline;
            let r = check_sequential(&ops, &Limits { cancelled: &c, ..Limits::default() });
            if t.elapsed().as_millis() > 50 {
                println!("n {n} seed {seed} {:?} {:?}", r.verdict, t.elapsed());
                for o in &ops { println!("   {o}"); }
                return;
            }
        }
    }
}
