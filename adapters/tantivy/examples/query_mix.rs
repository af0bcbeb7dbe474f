//! Prints the load mix as request paths, one per line, for a load generator
//! (a wrk Lua script cycling through them), so an HTTP run sends bazaar and
//! the NestJS peer the same queries the in-process bench measures.
//!
//! ```sh
//! cargo run -p bazaar-tantivy --example query_mix -- 4000 10000 1 > paths.txt
//! ```
//! Arguments: how many distinct queries (4000), the catalog size the
//! product numbers are drawn for (10000), the seed (1).

use bazaar_core::testkit::search_load::{query_mix, query_string};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).map_or(default, |a| a.parse().expect("a number"));
    let count = usize::try_from(arg(0, 4_000)).expect("fits");
    for params in query_mix(count, arg(1, 10_000), arg(2, 1)) {
        println!("/v1/products?{}", query_string(&params));
    }
}
