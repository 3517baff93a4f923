package bizcircle

// A Job describes, to instrumentation, the queued job that processes a
// stored notification ([Delivery.Job]) or sends a points sync: package
// queue's are River jobs. Its fields come from the queue, never from the
// notification, and hold no event data.
type Job struct {
	// System names the queue's system, such as "river".
	System string
	// Queue is the name of the queue the job was fetched from, such as
	// "bizcircle".
	Queue string
	// ID is the job's ID, as the system writes it.
	ID string
	// Attempt counts the job's runs, this one included: 1 for the first.
	Attempt int
}
