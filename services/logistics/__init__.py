"""The logistics network (issue 12): parcels moving leg by leg between village points, county
service centers and distribution centers.

    distance.py   the distance-matrix edge (a Protocol; haversine with a road factor by default)
    vrp.py        daily vehicle routes (capacitated, time windows, pickups and deliveries, droppable
                  visits) solved with OR-Tools, and the nearest-neighbour baseline the bench uses
    chain.py      the SM3 hash chain over a lot's events (tamper evidence)
    readings.py   temperature readings from loggers (JSON batches, CSV from Chinese Excel) and
                  excursions against a storage class
    loads.py      parcels waiting at a node for a next hop, their weight and volume
    fleet.py      the hubs (county centers, DCs) and their vehicles
    pallets.py    consolidation onto standard pallets per next hop and storage class
    routes.py     a hub's day as a vrp.Problem, solved, stored, and the legs given their vehicle
    hubday.py     a hub's day on one page
"""
