//! `sgd-lab landscape interpolate|slice` on a tiny trained run: JSON, CSV and SVG files as promised.
#![cfg(not(target_arch = "wasm32"))]

use std::process::Command;

fn sgd_lab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sgd-lab"))
}

#[test]
fn interpolate_and_slice_write_json_csv_and_svg() {
    let dir = std::env::temp_dir().join(format!("sgd-lab-landscape-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("run.json");
    std::fs::write(
        &cfg,
        r#"{"model": {"input": 2, "hidden": [8], "classes": 2, "activation": "relu", "init": "he"},
            "data": {"kind": "two_spirals", "n": 64, "seed": 1}, "batch_size": 8, "steps": 20,
            "models": [{"lr": 0.1, "seed": 1}, {"lr": 0.05, "seed": 2}]}"#,
    )
    .unwrap();
    let run = dir.join("run");
    assert!(sgd_lab().args(["train", "--quiet", "--backend", "cpu", "--snapshot-every", "6", "--config"]).arg(&cfg).arg("--out").arg(&run).status().unwrap().success());
    let params = run.join("params_final.safetensors");

    let out = dir.join("interp");
    let st = sgd_lab()
        .args(["landscape", "interpolate", "--backend", "cpu", "--tile", "4", "--points", "9", "--model-b", "1", "--a"])
        .arg(&params)
        .arg("--b")
        .arg(&params)
        .arg("--config")
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("landscape.json")).unwrap()).unwrap();
    assert_eq!(j["kind"], "interpolation");
    assert_eq!(j["alphas"].as_array().unwrap().len(), 9);
    assert_eq!(j["sets"][0]["name"], "train"); // synthetic runs have no validation or test set
    assert!(j["points_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(std::fs::read_to_string(out.join("landscape.csv")).unwrap().lines().count(), 10);
    assert!(std::fs::read_to_string(out.join("landscape.svg")).unwrap().contains("<svg"));

    let out = dir.join("slice");
    let st = sgd_lab()
        .args(["landscape", "slice", "--backend", "cpu", "--tile", "4", "--grid", "5", "--from", "-0.5", "--to", "0.5", "--seed", "3", "--params"])
        .arg(&params)
        .arg("--config")
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("landscape.json")).unwrap()).unwrap();
    assert_eq!(j["kind"], "slice2d");
    assert_eq!(j["betas"].as_array().unwrap().len(), 5);
    assert_eq!(j["sets"][0]["loss"].as_array().unwrap().len(), 25);
    assert_eq!(j["seed"], 3);
    assert_eq!(std::fs::read_to_string(out.join("landscape.csv")).unwrap().lines().count(), 26);
    assert!(std::fs::read_to_string(out.join("landscape_train.svg")).unwrap().contains("<svg"));
    assert!(out.join("directions.safetensors").exists());

    // PCA directions of the trajectory (steps 0, 6, 12, 18 and the final 20), drawn over the heatmap
    let traj = sgd_lab::train::safetensors::trajectory_from_safetensors(&std::fs::read(run.join("trajectory.safetensors")).unwrap()).unwrap();
    assert_eq!(traj.steps, [0, 6, 12, 18, 20]);
    assert_eq!(traj.models, 2);
    let (_, fin) = sgd_lab::train::safetensors::params_from_safetensors(&std::fs::read(&params).unwrap()).unwrap();
    assert_eq!(&traj.params[4 * fin.len()..], &fin[..], "the last snapshot is the final parameters");
    let out = dir.join("pca");
    let st = sgd_lab()
        .args(["landscape", "slice", "--backend", "cpu", "--tile", "4", "--grid", "7", "--directions", "pca", "--model", "1", "--trajectory"])
        .arg(run.join("trajectory.safetensors"))
        .arg("--config")
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("landscape.json")).unwrap()).unwrap();
    let ev: Vec<f64> = j["pca"]["explained_variance"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(ev[0] >= ev[1] && ev[0] + ev[1] <= 1.0 + 1e-9 && ev[0] > 0.0, "{ev:?}");
    let coords = j["pca"]["coords"].as_array().unwrap();
    assert_eq!(coords.len(), 5);
    // the fitted axes cover the whole trajectory
    let (a, b) = (j["alphas"].as_array().unwrap(), j["betas"].as_array().unwrap());
    for c in coords {
        let (x, y) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
        assert!(a[0].as_f64().unwrap() < x && x < a[6].as_f64().unwrap() && b[0].as_f64().unwrap() <= y && y <= b[6].as_f64().unwrap());
    }
    let svg = std::fs::read_to_string(out.join("landscape_train.svg")).unwrap();
    assert!(svg.contains(&format!("1st PCA direction ({:.1}% of variance)", 100.0 * ev[0])), "explained variance in the axis label");
    let path = svg.lines().find(|l| l.contains("<polyline") && l.contains("stroke=\"#FF7800\"")).expect("the trajectory is drawn as an orange line");
    assert_eq!(path.split("points=\"").nth(1).unwrap().split_whitespace().filter(|t| t.contains(',')).count(), 5, "one vertex per snapshot: {path}");
    // PCA without a trajectory is refused
    let o = sgd_lab().args(["landscape", "slice", "--backend", "cpu", "--directions", "pca", "--params"]).arg(&params).arg("--config").arg(&cfg).arg("--out").arg(dir.join("y")).output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--trajectory"), "{}", String::from_utf8_lossy(&o.stderr));

    // a parameter file of another architecture is refused by name
    let other = dir.join("other.json");
    std::fs::write(&other, std::fs::read_to_string(&cfg).unwrap().replace("\"hidden\": [8]", "\"hidden\": [9]")).unwrap();
    let o = sgd_lab().args(["landscape", "slice", "--backend", "cpu", "--params"]).arg(&params).arg("--config").arg(&other).arg("--out").arg(dir.join("x")).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("differs from the config's model"), "{}", String::from_utf8_lossy(&o.stderr));
}
