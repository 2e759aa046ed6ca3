"""Rule pair_filters: Fig. 4-5's data, the first and the last 3x3 layer of the pair's robust
and normal model, read from their filter stores (layer_id 0 and the highest layer_id)."""

from filterlens.extract.store import check_store_matches, open_filter_store
from filterlens.io.files import write_npz
from filterlens.io.scripting import rule_script

with rule_script(snakemake) as log:
    arrays = {}
    for role, path, model_id in zip(("robust", "normal"), (snakemake.input.robust, snakemake.input.normal),
                                    snakemake.params.pair):
        store = open_filter_store(path)
        check_store_matches(store, model_id, None)
        layers = store.layers.sort_values("layer_id")
        for which, layer in (("first", layers.iloc[0]), ("last", layers.iloc[-1])):
            rows = store.filters[int(layer.row_start):int(layer.row_stop)]
            c_in = int(layer.c_in // layer.groups)
            arrays[f"{role}_{which}"] = rows.reshape(int(layer.c_out), c_in, 3, 3)
            arrays[f"{role}_{which}_name"] = str(layer["name"])
            arrays[f"{role}_{which}_depth"] = int(layer.conv_depth)
            log.info("%s (%s) %s 3x3 layer %s: depth %d, %d x %d filters", model_id, role, which, layer["name"],
                     layer.conv_depth, layer.c_out, c_in)
        arrays[f"{role}_model"] = store.model_id
        arrays[f"{role}_dataset"] = str(store.attrs.get("dataset", ""))
    write_npz(snakemake.output[0], **arrays)
