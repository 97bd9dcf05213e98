//! startup task: the Rust hello-world. Prints exactly "Hello, world!\n".

fn main() {
    println!("Hello, world!");
}
