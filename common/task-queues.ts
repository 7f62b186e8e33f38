/** Where the control-plane worker runs workflows and activities, the agents' host steps among them. */
export const defaultControlTaskQueue = 'strackt-control';
