//! The yandex360 API simulator (being written).

/// Command-line settings of this simulator.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Serves the simulator until the process is stopped.
pub async fn serve(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("the yandex360 simulator is not written yet")
}
