fn main() {
    println!("harness: not built yet");
}
